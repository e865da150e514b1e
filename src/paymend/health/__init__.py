"""Channel health: sliding windows of outcomes, circuit breakers, their shared state."""
