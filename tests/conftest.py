pytest_plugins = ["kubeharness.fixtures", "armemu.plugin"]
