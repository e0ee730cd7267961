"""What an operator runs beside the daemon: status, doctor, backup."""
