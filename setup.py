from setuptools import find_packages, setup

setup(
    name="awe-tf",
    version="0.1.0",
    description="Affinity Weighted Embedding (WSABIE / AWE, trained with WARP) on TensorFlow Recommenders",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["awe_tf", "awe_tf.*"]),
    package_data={"awe_tf": ["datasets/*/*", "native/*.c"]},
    python_requires=">=3.10,<3.14",  # CI: 3.11; 3.12 and 3.13 in part (README, Two commands)
    install_requires=[
        "tensorflow~=2.20.0",
        "tf-keras~=2.20.0",
        "tensorflow-recommenders==0.7.7",
        "numpy",
        "scipy",
        "threadpoolctl>=3.1",  # BLAS on one thread while --affinity auto counts CPU time
    ],
    extras_require={
        "tuning": ["keras-tuner==1.4.8", "scikit-learn>=1.3"],
        "scann": ["scann==1.4.2"],
        "serving": ["scann==1.4.2", "tensorflow-serving-api~=2.20.0"],
        "plots": ["matplotlib>=3.8"],
        "test": ["pytest"],
    },
    entry_points={"console_scripts": ["awe-tf=awe_tf.cli:main"]},
)
