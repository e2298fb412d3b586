"""Imported from lockscope_startup.pth at interpreter start-up when LOCKSCOPE_OUT is set."""
