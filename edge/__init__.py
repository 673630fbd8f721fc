"""Edge agent: acquire (OPC UA, MQTT) → normalize → buffer → uplink to the central broker."""
