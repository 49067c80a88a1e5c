"""CLI: ``python -m bookgen.simulator --port N [--host H] [--config F] [--state-dir DIR]``."""

from __future__ import annotations

import argparse
import sys

from bookgen.simulator.app import Simulator
from bookgen.simulator.config import load_config_file
from bookgen.simulator.server import SimulatorHTTPServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bookgen.simulator",
        description="Serve bookgen's OpenAI-compatible chat-completions simulator until killed.",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--config", help="YAML simulator config (see simulator.schema.yaml)")
    parser.add_argument("--state-dir", help="directory for shared cache, counters and ledger")
    args = parser.parse_args(argv)
    try:
        config = load_config_file(args.config) if args.config else None
    except (OSError, ValueError) as exc:
        print(f"bookgen simulator: {exc}", file=sys.stderr)
        return 2
    sim = Simulator(config, state_dir=args.state_dir)
    server = SimulatorHTTPServer(sim, args.host, args.port)
    print(f"bookgen simulator listening on http://{args.host}:{server.port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
