"""The lab: replay outages and fraud waves in simulated time, against an oracle."""
