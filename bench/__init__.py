"""Side-by-side benchmark of MySpinBot against the seed-node reference (`make bench`)."""
