"""ARC's small controller-runtime: queue, informers, controllers, leader election, events, manager."""

from controllers.runtime.controller import Controller
from controllers.runtime.events import EventRecorder, ObjectReference
from controllers.runtime.informer import Informer
from controllers.runtime.leaderelection import LeaderElectionConfig, LeaderElector, LostLeadershipError
from controllers.runtime.manager import Manager
from controllers.runtime.queue import RateLimitingQueue
from controllers.runtime.reconcile import Reconciler, Request, Result, TerminalError

__all__ = [
    "Controller",
    "EventRecorder",
    "Informer",
    "LeaderElectionConfig",
    "LeaderElector",
    "LostLeadershipError",
    "Manager",
    "ObjectReference",
    "RateLimitingQueue",
    "Reconciler",
    "Request",
    "Result",
    "TerminalError",
]
