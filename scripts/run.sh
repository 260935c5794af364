#!/bin/sh
# `make run`: the main job. Creates the home if needed (GATEPASS_HOME, default ~/.gatepass) and
# runs the gateway on it, in the foreground, until Ctrl-C or SIGTERM.
set -eu
GATEPASS=${GATEPASS:-gatepass}
$GATEPASS init
exec $GATEPASS serve "$@"
