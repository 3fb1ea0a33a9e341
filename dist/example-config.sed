# config.yaml -> walcount.yaml.example (make install): drops the lines that
# only concern `make run` and puts back the default DSN, so an installed
# walcount never points at a development server by default.
/^ *# make run:/d
s|^  dsn: "host=127.0.0.1 port=5499 dbname=audius user=postgres"$|  dsn: "host=localhost port=5432 dbname=audius user=walcount"|
