"""The daemon's runtime: lifecycle (service), the step loop (pipeline), the folder
watcher and settle tracker, systemd notify, and the wiring of services."""
