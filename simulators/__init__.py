"""In-memory stand-ins for NetBox, VOLTHA, ONOS and GenieACS, with fault injection for tests."""
