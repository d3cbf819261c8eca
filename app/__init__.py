"""siamtrack application layer: the command line (Qt-free) and, later, the desktop app."""
