"""Delegation to kube-apiserver: the aggregated mode's authentication, authorization and admission inputs.

An aggregated API server trusts kube-apiserver for who a user is (front-proxy request headers, TokenReview,
client certificates from the cluster's client CA) and what they may do (SubjectAccessReview), exactly as
``k8s.io/apiserver``'s delegating authenticator and authorizer do.
"""
