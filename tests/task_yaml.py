"""Read lm-eval task YAMLs in tests: `!function` tags become their dotted-name strings."""
import yaml


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def load_task_yaml(path):
    return yaml.load(path.read_text(), Loader=_Loader)
