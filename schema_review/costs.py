"""Per-row costs of heavy schema changes, measured on real servers by bench/schema_costs.py
(generated: rerun the bench with --write on the hardware you deploy to, do not edit by hand)."""

COSTS = {'measured': '2026-12-07 08:59 UTC',
 'load': '0.47 0.32 0.13',
 'hardware': {'cpu': 'AMD EPYC',
              'cores': 2,
              'memory_mib': 24105,
              'machine': 'x86_64',
              'kernel': '6.18.44-fc-v1272'},
 'command': 'bench/schema_costs.py --rows 300000',
 'postgres': {'version': '15.20 (Debian 15.20-0+deb12u1)',
              'rows': 300000,
              'bytes': 32137216,
              'seconds_per_million_rows': {'index-build': 1.038,
                                           'scan': 0.124,
                                           'rewrite': 2.37},
              'sample_rows_per_second': 10981244},
 'mariadb': {'version': '10.11.19-MariaDB-0+deb12u1',
             'rows': 300000,
             'bytes': 22609920,
             'seconds_per_million_rows': {'nocopy': 1.062, 'rebuild': 1.704, 'copy': 2.81},
             'sample_rows_per_second': 691066}}
