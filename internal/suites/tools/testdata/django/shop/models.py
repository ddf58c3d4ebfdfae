# The models live in each scenario's migrations (shop/scenarios/).
