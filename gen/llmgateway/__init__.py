"""Generated protobuf package; see proto/ and scripts/gen.sh."""
