// placeholder until the calico model lands
