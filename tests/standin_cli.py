import sys, argparse
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin_backbone
from cofee_lib.commands import train
from cofee_lib.errors import CofeeError
standin_backbone.install()
p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command"); train.register(sub)
a = p.parse_args(sys.argv[1:])
try:
    sys.exit(a.func(a))
except CofeeError as e:
    print("error:", e, file=sys.stderr); sys.exit(2)
