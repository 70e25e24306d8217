"""Results to Results and an exit code: waivers, baselines, history and the gate decision."""
