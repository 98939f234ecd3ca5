"""One training engine (loop + hooks), checkpoints, device and precision handling."""
