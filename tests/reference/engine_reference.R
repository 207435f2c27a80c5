# lme4/lmerTest results for the engine tests (tests/test_lmm.py) on the frames in engine/
# (written by `python benchmarks/lmm_speed.py --write-test-frames`).
# Run from this folder: Rscript engine_reference.R   (writes engine/lme4.csv)
# Frames with a "domain" column get the combined model's third level,
# (1 | institution:participant:domain).
suppressMessages({library(lme4); library(lmerTest)})
# lme4's default optimiser stops early on some of these designs (e.g. 4 large institutions:
# "Model failed to converge"), so the reference is fitted with tight tolerances.
tight <- lmerControl(check.conv.singular = "ignore", optimizer = "nloptwrap",
                     optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12,
                                    xtol_rel = 1e-12, maxeval = 1e5))
# lmerTest's Satterthwaite df recomputed with a fresh deviance function (lme4's devFunOnly):
# lmerTest's formula and its numDeriv derivatives, but independent of the fitted object's state.
# On the tiny-residual design lmerTest's stored Jacobian of vcov(beta) differs from this (and
# from the engine's exact one) by about 1e-4, so both are stored.
# `hessian_d` is numDeriv's relative step for the Hessian of the deviance (its default, 0.1, is
# what lmerTest uses, with Richardson extrapolation over d, d/2, d/4, d/8). The df at smaller
# steps show whether the numerical derivatives are stable on a design: on the tiny-residual
# design they move by far more than 1e-4 relative, so lmerTest cannot be the 1e-4 reference there
# (tests/reference/satterthwaite_40_digits.py computes the exact df instead).
satterthwaite_fresh <- function(fit, formula, frame, hessian_d = 0.1) {
  devfun <- lmer(formula, frame, REML = TRUE, control = tight, devFunOnly = TRUE)
  varpar <- c(getME(fit, "theta"), sigma(fit))
  h <- numDeriv::hessian(function(v) lmerTest:::devfun_vp(v, devfun, reml = TRUE), varpar,
                         method.args = list(d = hessian_d))
  A <- 2 * solve(h)
  J <- numDeriv::jacobian(function(v) lmerTest:::get_covbeta(v, devfun), varpar)
  C <- as.matrix(vcov(fit))
  p <- ncol(C)
  sapply(seq_len(p), function(i) {
    g <- J[(i - 1) * p + i, ]
    2 * C[i, i]^2 / sum(g * (A %*% g))
  })
}
rows <- list()
for (path in sort(Sys.glob("engine/*.csv"))) {
  case <- sub("\\.csv$", "", basename(path))
  if (case %in% c("lme4", "satterthwaite_40_digits")) next  # results, not frames
  frame <- read.csv(path, stringsAsFactors = FALSE)
  design <- grep("^x_", names(frame), value = TRUE)
  random <- "(1 | institution) + (1 | institution:participant)"
  if ("domain" %in% names(frame)) random <- paste(random, "+ (1 | institution:participant:domain)")
  formula <- as.formula(paste("y ~ 0 +", paste(design, collapse = " + "), "+", random))
  fit <- lmer(formula, frame, REML = TRUE, control = tight)
  coefs <- coef(summary(fit, ddf = "Satterthwaite"))
  vc <- as.data.frame(VarCorr(fit))
  theta <- getME(fit, "theta")
  rows[[length(rows) + 1]] <- rbind(
    data.frame(case = case, quantity = "estimate", term = rownames(coefs), value = coefs[, "Estimate"]),
    data.frame(case = case, quantity = "std_error", term = rownames(coefs), value = coefs[, "Std. Error"]),
    data.frame(case = case, quantity = "df", term = rownames(coefs), value = coefs[, "df"]),
    data.frame(case = case, quantity = "df_fresh_devfun", term = rownames(coefs),
               value = satterthwaite_fresh(fit, formula, frame)),
    data.frame(case = case, quantity = "df_fresh_devfun_hessian_d_1e-2", term = rownames(coefs),
               value = satterthwaite_fresh(fit, formula, frame, hessian_d = 1e-2)),
    data.frame(case = case, quantity = "df_fresh_devfun_hessian_d_1e-3", term = rownames(coefs),
               value = satterthwaite_fresh(fit, formula, frame, hessian_d = 1e-3)),
    data.frame(case = case, quantity = "variance", term = vc$grp, value = vc$vcov),
    data.frame(case = case, quantity = "theta", term = sub("\\.\\(Intercept\\)$", "", names(theta)),
               value = unname(theta)),
    data.frame(case = case, quantity = "reml_criterion", term = "", value = REMLcrit(fit)),
    data.frame(case = case, quantity = "singular", term = "", value = as.numeric(isSingular(fit))))
}
versions <- data.frame(case = "versions", quantity = "version",
                       term = c(R.version.string, paste("lme4", packageVersion("lme4")),
                                paste("lmerTest", packageVersion("lmerTest"))), value = NA)
out <- rbind(do.call(rbind, rows), versions)
write.csv(out, "engine/lme4.csv", row.names = FALSE)
