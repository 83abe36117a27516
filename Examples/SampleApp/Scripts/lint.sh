#!/bin/sh
set -eu
echo "build phase: lint"
