"""Tests of the data plane's HTTP/1.1 server and upstream client."""
