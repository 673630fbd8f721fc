"""OPC UA acquisition (asyncua): subscriptions with batched monitored items, or polling."""
