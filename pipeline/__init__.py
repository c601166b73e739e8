"""stormwatch: Kafka-native incident correlation."""
