from daemon.cli.app import main

main()
