"""``make run``: the embedded infrastructure, the four workers, the simulator, the live summary."""
