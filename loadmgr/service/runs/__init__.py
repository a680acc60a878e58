"""A run before it is collected: its options, its plan, the cluster's lease, its locustfile,
its swarm.
"""
