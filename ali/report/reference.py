"""Published numbers, typed in once, each with its source. Tables print them only in columns named
for their source (``paper_*``, ``pacgan_*``), never as ours.
"""

from __future__ import annotations

# Dumoulin et al. (2017), section 4.5: 10 runs per model with random hyperparameters; the paper's
# mode count (10,000 samples, a mode is dropped when no sample is assigned to it). The paper does not
# say whether its +/- is a population or sample std.
PAPER_MIXTURE = {
    "ali": {"modes_mean": 13.4, "modes_std": 5.8, "modes_min": 8, "modes_max": 25},
    "gan": {"modes_mean": 10.4, "modes_std": 9.2, "modes_min": 1, "modes_max": 22},
}

# Lin et al., PacGAN (2018), table re-running the authors' ALI code with its fixed hyperparameters
# (lr 1e-4, Blocks beta1 0.8) for 400 epochs over 10 seeds; the stricter metrics (2,500 samples,
# 3 std); +/- is the standard error over the 10 trials.
PACGAN_MIXTURE = {
    "ali": {"strict_modes_mean": 24.1, "strict_modes_sem": 0.4, "hq_pct_mean": 95.7, "hq_pct_sem": 0.6,
            "reverse_kl_mean": 0.14, "reverse_kl_sem": 0.03},
    "gan": {"strict_modes_mean": 17.3, "strict_modes_sem": 0.8, "hq_pct_mean": 94.8, "hq_pct_sem": 0.7,
            "reverse_kl_mean": 0.70, "reverse_kl_sem": 0.07},
}
PACGAN_EPOCHS = 400

# Which published protocol each of our protocol kinds stands beside.
MIXTURE_REFERENCES = {"random": ("paper", PAPER_MIXTURE), "fixed": ("pacgan", PACGAN_MIXTURE)}

# Dumoulin et al. (2017), Table 1 (SVHN, 1,000 labels): L2-SVM rows. ALI's +/- is the std over 100
# SVMs (1 sigma); DCGAN + L2-SVM is Radford et al.'s number, quoted by the paper (its GAN is not ours).
PAPER_TABLE1_SVM = {
    "ali": {"paper_model": "ALI (L2-SVM)", "paper_error_pct": 19.14, "paper_error_std": 0.50},
    "gan": {"paper_model": "DCGAN + L2-SVM (Radford et al., quoted)", "paper_error_pct": 22.18},
}

# Table 1 (SVHN, 1,000 labels), K+1 rows; +/- is 1 sigma. GAN (FM) is Salimans et al.'s number.
PAPER_TABLE1_KPLUS1 = {
    "ali_kplus1": {"paper_model": "ALI (ours, K+1, no feature matching)", "paper_error_pct": 7.42,
                   "paper_error_std": 0.65},
    "gan_fm": {"paper_model": "GAN (feature matching) (Salimans et al., quoted)", "paper_error_pct": 8.11,
               "paper_error_std": 1.3},
}

# Table 2 (CIFAR10): error % by number of labels; the caption's error bars are 3 sigma.
PAPER_TABLE2 = {
    "ali_kplus1": {1000: (19.98, 0.89), 2000: (19.09, 0.44), 4000: (17.99, 1.62), 8000: (17.05, 1.49)},
    "gan_fm": {1000: (21.83, 2.01), 2000: (19.61, 2.09), 4000: (18.63, 2.32), 8000: (17.72, 1.82)},
}

# How many runs each published +/- is taken over, where the source says so (the report's verdicts turn
# a std into a standard error with it). Table 1's K+1 rows and Table 2 do not say.
PAPER_MIXTURE_N_RUNS = 10        # section 4.5: "Each model was trained 10 times"
PACGAN_N_TRIALS = 10             # PacGAN's table: standard error over 10 trials
PAPER_TABLE1_SVM_N_TRIALS = 100  # section 4.3: "measured for 100 different SVMs"
