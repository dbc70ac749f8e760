"""Release signatures: OpenSSF model signing bundles over a version's artifact, the keys that make
them, the trust policy that judges them, and ``modelcat sign``."""
