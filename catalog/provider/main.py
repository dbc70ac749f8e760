"""Entry point of the console script ``terraform-provider-modelcat`` (started by Terraform)."""

from __future__ import annotations

from typing import Any

__all__ = ["main"]

_STOP_PROVIDER = "/tfplugin6.Provider/StopProvider"


def _keep_serving_on_stop(runner: Any) -> None:
    """Make tf's runner treat StopProvider as Terraform means it, not as a shutdown.

    On Ctrl-C Terraform calls StopProvider and then waits for the operations in flight to finish
    and writes them to the state; the plugin is ended later, by go-plugin's GRPCController
    Shutdown. tf 1.2's runner stops its gRPC server on StopProvider already, which cuts off an
    ApplyResourceChange in flight ("Plugin did not respond"): replicas it started are then in
    neither the state nor, until the abandoned call ends, the run records, and the next apply
    starts another set beside them. Only Shutdown ends the server here.
    """
    base = getattr(runner, "_ShutdownInterceptor", None)
    if base is None:  # another tf: nothing to correct
        return

    class KeepServingOnStop(base):  # type: ignore[misc, valid-type]  # a class found at run time (Any), not declared
        def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
            if handler_call_details.method == _STOP_PROVIDER:
                return continuation(handler_call_details)
            return super().intercept_service(continuation, handler_call_details)

    runner._ShutdownInterceptor = KeepServingOnStop


def main() -> None:
    from tf import runner

    from catalog.provider.provider import ModelcatProvider

    _keep_serving_on_stop(runner)
    runner.run_provider(ModelcatProvider())
