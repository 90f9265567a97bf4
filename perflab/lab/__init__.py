"""The lab: running the sample service under real k6 load against a real PostgreSQL."""
