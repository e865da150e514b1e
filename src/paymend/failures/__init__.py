"""The failure catalogue: provider codes -> unified failures -> decisions and messages."""
