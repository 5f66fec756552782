"""Plans: what to run, validated before anything is sent."""
