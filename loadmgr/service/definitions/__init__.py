"""What a team defines once: load tests, clusters, and the bounds on the load they may ask for."""
