"""The Order controller: each artifact of an Order becomes one ArtifactWorkflow (SPEC §4.1)."""

from controllers.order.reconciler import OrderReconciler
from controllers.order.setup import setup_order_controller

__all__ = ["OrderReconciler", "setup_order_controller"]
