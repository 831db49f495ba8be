"""Which of moby's integration tests the peer run leaves out, and why.

Prints one line per left-out top-level test: "<TestName>\t<reason>". Left out are tests that start
a daemon of their own (`daemon.New`: they test dockerd's start-up options with Debian's dockerd,
whatever DOCKER_HOST points at), and tests that reach a registry or Docker Hub (a pull, a push, a
search, a distribution inspect): tests send no traffic off this machine.
"""
import pathlib
import re
import sys

MARKERS = {
    "daemon.New(": "starts a daemon of its own (daemon.New)",
    "ImagePull(": "pulls from a registry",
    "ImagePush(": "pushes to a registry",
    "ImageSearch(": "searches Docker Hub",
    "DistributionInspect(": "asks a registry",
    "registry.NewV2(": "runs a registry binary of moby's build",
}


def main(pkg_dir: str) -> None:
    for path in sorted(pathlib.Path(pkg_dir).glob("*_test.go")):
        src = path.read_text()
        # Top-level test functions and their bodies (up to the next top-level func).
        starts = [(m.start(), m.group(1)) for m in re.finditer(r"^func (Test\w+)\(t \*testing\.T\)", src, re.M)]
        funcs = [m.start() for m in re.finditer(r"^func ", src, re.M)] + [len(src)]
        for start, name in starts:
            end = next(f for f in funcs if f > start)
            body = src[start:end]
            for marker, reason in MARKERS.items():
                if marker in body:
                    print(f"{name}\t{reason}")
                    break


if __name__ == "__main__":
    main(sys.argv[1])
