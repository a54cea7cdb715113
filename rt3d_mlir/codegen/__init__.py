"""Kernel code generation shared by the CPU and GPU targets."""
