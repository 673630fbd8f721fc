"""MQTT device acquisition: JSON (or plain) payloads on per-device topics of a plant broker."""
