"""CDK Terrain stacks: the one-time GitHub bootstrap and one platform stack per environment."""
