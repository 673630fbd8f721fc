"""What the edge agent and the collector must agree on: the register (plant model),
the uplink wire schema, topic names and OPC UA quality semantics.

Neither side imports the other; both import this package.
"""
