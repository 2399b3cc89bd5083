pytest_plugins = ["kubeharness.fixtures"]
