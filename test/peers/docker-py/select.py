"""Which tests of the Docker SDK for Python's integration suite the peer run leaves out, and why.

Prints one line per left-out test: "<node id>\t<reason>". Left out are the swarm-only files (an
engine without swarm answers 503 there, as dockerd does outside a swarm), and every test whose
body reaches Docker Hub (a pull, a push, a search, a Hub-only image such as hello-world, or a
plugin from the Hub): tests send no traffic off this machine.
"""
import ast
import pathlib
import sys

SWARM_FILES = {
    "api_swarm_test.py", "api_service_test.py", "api_secret_test.py", "api_config_test.py",
    "models_nodes_test.py", "models_services_test.py", "models_swarm_test.py",
}
HUB_FILES = {"api_plugin_test.py": "plugins are pulled from Docker Hub"}
HUB_MARKERS = {
    ".pull(": "pulls from Docker Hub",
    "hello-world": "uses hello-world from Docker Hub",
    "client.search(": "searches Docker Hub",
    "images.search(": "searches Docker Hub",
    ".push(": "pushes to a registry",
    "swarm": "needs a swarm",
    "inspect_distribution(": "asks Docker Hub for a manifest",
    "does_not_exist": "pulls a missing image from Docker Hub",
}


def main(root: str) -> None:
    base = pathlib.Path(root)
    # credentials/ needs a docker-credential helper, and its utils_test replaces os.environ with a
    # dict of its own: every later test would lose DOCKER_HOST and fail on any daemon.
    print(f"{base.name}/credentials\tneeds a docker-credential helper; replaces os.environ (later tests lose DOCKER_HOST)")
    for path in sorted(base.glob("*_test.py")):
        rel = f"{base.name}/{path.name}"
        if path.name in SWARM_FILES:
            print(f"{rel}\tswarm only")
            continue
        if path.name in HUB_FILES:
            print(f"{rel}\t{HUB_FILES[path.name]}")
            continue
        src = path.read_text()
        tree = ast.parse(src)
        for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
            for fn in [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]:
                body = ast.get_source_segment(src, fn) or ""
                for marker, reason in HUB_MARKERS.items():
                    if marker in body:
                        print(f"{rel}::{cls.name}::{fn.name}\t{reason}")
                        break


if __name__ == "__main__":
    main(sys.argv[1])
