"""``gatepass run``: start an agent with a key of its own and nothing of its owner's.

- :mod:`~gatepass.runner.environment`: the child's environment, from an allowlist plus gatepass's variables;
- :mod:`~gatepass.runner.supervise`: signals passed to the child, the grace period, the exit code;
- :mod:`~gatepass.runner.sandbox`: the bubblewrap command line of ``--sandbox`` (what is hidden, what is shared);
- :mod:`~gatepass.runner.relay`: byte relays between a Unix socket and TCP (the sandbox's only way out);
- :mod:`~gatepass.runner.inside`: the sandbox's first process (relay on its loopback, then the command);
- :mod:`~gatepass.runner.plant`: decoy files written into the working folder for the run, removed after.

:mod:`gatepass.control.run` puts them together with the key, the canaries and the gateway.
"""
