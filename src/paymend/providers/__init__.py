"""Payment providers behind one protocol: the simulator, and real providers later."""
