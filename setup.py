"""Maps the three import roots onto the product's fixed folders (see ARCHITECTURE.md)."""
from setuptools import find_packages, setup

ROOTS = {
    "greenlight": "plugins/greenlight",
    "schema_review": "schema_review",
    "greenlight_master": "master/greenlight_master",
}

packages, package_dir = [], {}
for name, path in ROOTS.items():
    packages.append(name)
    package_dir[name] = path
    for sub in find_packages(path):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{path}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir, include_package_data=True,
      package_data={"": ["*.html", "*.css", "*.js", "*.sql", "*.toml",
                         "templates/*.html", "templates/*/*.html"]})
