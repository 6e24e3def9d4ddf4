"""Run llama.cpp's HTTP server from the xllamacpp wheel until SIGTERM.

xllamacpp (PyPI) is a prebuilt llama.cpp server as a Python extension without a command line;
this launcher takes the server's own flag names. The server answers /health (503 while
loading, then 200), /v1/chat/completions, /v1/models and, with --metrics, /metrics.
Installed by llmfleet.cluster.model_server; one process per replica.
"""

import argparse
import os
import signal
import sys

import xllamacpp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--alias", required=True, help="model name clients send")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ctx-size", type=int, default=2048)
    parser.add_argument("--parallel", type=int, default=2, help="concurrent slots")
    parser.add_argument("--threads", type=int, default=0, help="0: all CPUs this process may use")
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument("--metrics", action="store_true", help="serve /metrics")
    args = parser.parse_args(argv)

    if not os.path.isfile(args.model):
        parser.error("model file %s does not exist" % args.model)
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.n_gpu_layers = args.n_gpu_layers
    params.cpuparams.n_threads = args.threads or len(os.sched_getaffinity(0))
    params.endpoint_metrics = args.metrics
    # Block the signals before the server starts its threads, so that they inherit the mask
    # and SIGTERM reaches sigwait below instead of killing a worker thread.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server = xllamacpp.Server(params)
    print("llamacpp_serve: %s serving %s on %s" % (args.alias, args.model, server.listening_address), flush=True)
    received = signal.sigwait({signal.SIGTERM, signal.SIGINT})
    print("llamacpp_serve: signal %d, stopping" % received, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
