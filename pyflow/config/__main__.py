"""Print conf/pyflow-conf.yaml as generated from the option declarations.

    python -m pyflow.config > conf/pyflow-conf.yaml
"""

import sys

from pyflow.config import render_yaml

sys.stdout.write(render_yaml())
