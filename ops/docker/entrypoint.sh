#!/bin/sh
# Entry point of the ceso image: turn secrets mounted as files into the variables the programs
# read, then run the command. NAME_FILE=/run/secrets/x sets NAME from that file and is removed
# from the environment (Flower rejects unknown FLOWER_* variables). Nothing is printed.
set -eu
for name in PGPASSWORD FLOWER_BASIC_AUTH CESO_HOST_PASSWORD; do
    file_var="${name}_FILE"
    eval "file=\${$file_var:-}"
    if [ -n "$file" ]; then
        value=$(cat "$file")
        export "$name=$value"
        unset "$file_var"
    fi
done
exec "$@"
