# Longitudinal measurement invariance with lavaan: the reference for dpo_eval.analysis.invariance.
#
# Usage: Rscript tests/reference/invariance_lavaan.R FRAME.csv FREED OUT.csv
#   FRAME.csv  one row per participant, columns {item}.pre ... then {item}.post ... (keyed
#              values, complete cases), as dpo_eval.analysis.invariance.wide_frame writes them
#   FREED      items whose exit intercepts are free in the partial scalar model ("pk3,pk5"),
#              or "none" (no partial model)
#   OUT.csv    columns model, measure, value: chisq, df, pvalue, cfi, tli, rmsea,
#              rmsea.ci.lower, rmsea.ci.upper, srmr of lavaan's fitMeasures (estimator "ML"),
#              chisq.scaled, chisq.scaling.factor, pvalue.scaled (the same model with estimator
#              "MLM", Satorra-Bentler), std:{item}.{wave} (standardizedSolution's est.std of each
#              loading), and against the model below it (metric: configural; scalar and
#              partial_scalar: metric) lr.chisq, lr.df, lr.pvalue (lavTestLRT of the ML fits) and
#              lr.chisq.scaled, lr.pvalue.scaled (of the MLM fits, Satorra-Bentler 2001)
# The time of the fits is printed to stderr.
#
# The stored numbers (tests/reference/invariance/*.lavaan.csv) were made in that folder with
#   Rscript ../invariance_lavaan.R demo_universal.csv none demo_universal.lavaan.csv
# and likewise for every frame there; shifted_professional with FREED "pk3". The demo_* frames
# are the demo study's, the shifted_* frames those of
#   python -m dpo_eval.simulate --seed 24 --schools 120 --needs 20 --intercept-shift pk3=0.6
# (tests/test_invariance.py checks that the pipeline's frames of both studies equal them).
#
# The models are those of the module: one factor per wave (first item's loading fixed at 1),
# residuals of the same item correlated across the waves; metric: equal loadings; scalar: also
# equal intercepts and the exit factor mean free; estimator = "ML" (lavaan's default "normal"
# likelihood: sample covariances divided by N).
suppressPackageStartupMessages(library(lavaan))

args <- commandArgs(trailingOnly = TRUE)
stopifnot(length(args) == 3)
frame <- read.csv(args[1], check.names = FALSE)
freed <- if (args[2] == "none") character(0) else strsplit(args[2], ",")[[1]]
items <- sub("\\.pre$", "", grep("\\.pre$", names(frame), value = TRUE))
names(frame) <- gsub(".", "_", names(frame), fixed = TRUE)

syntax <- function(level, freed = character(0)) {
  k <- length(items)
  loading <- function(wave) {
    labels <- if (level == "configural") paste0("l", wave, seq_len(k)) else paste0("l", seq_len(k))
    terms <- ifelse(seq_len(k) == 1, paste0("1*", items, "_", wave),
                    paste0(labels, "*", items, "_", wave))
    paste0("F", wave, " =~ ", paste(terms, collapse = " + "))
  }
  residuals <- paste0(items, "_pre ~~ ", items, "_post")
  lines <- c(loading("pre"), loading("post"), residuals)
  if (level == "scalar") {
    post_label <- ifelse(items %in% freed, paste0("ip", seq_len(k)), paste0("i", seq_len(k)))
    lines <- c(lines, paste0(items, "_pre ~ i", seq_len(k), "*1"),
               paste0(items, "_post ~ ", post_label, "*1"), "Fpre ~ 0*1", "Fpost ~ 1")
  }
  paste(lines, collapse = "\n")
}

measures <- c("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea.ci.lower",
              "rmsea.ci.upper", "srmr")
models <- list(configural = syntax("configural"), metric = syntax("metric"),
               scalar = syntax("scalar"))
if (length(freed) > 0) models$partial_scalar <- syntax("scalar", freed)

robust <- c("chisq.scaled", "chisq.scaling.factor", "pvalue.scaled")
below <- c(metric = "configural", scalar = "metric", partial_scalar = "metric")

rows <- list()
fits <- list()
started <- proc.time()[["elapsed"]]
for (name in names(models)) {
  fit <- cfa(models[[name]], data = frame, estimator = "ML", meanstructure = TRUE)
  fit_mlm <- cfa(models[[name]], data = frame, estimator = "MLM", meanstructure = TRUE)
  stopifnot(lavInspect(fit, "converged"), lavInspect(fit_mlm, "converged"))
  fits[[name]] <- list(ml = fit, mlm = fit_mlm)
  values <- c(fitMeasures(fit, measures), fitMeasures(fit_mlm, robust))
  rows[[length(rows) + 1]] <- data.frame(model = name, measure = c(measures, robust),
                                         value = as.numeric(values))
  if (name %in% names(below)) {
    general <- fits[[below[[name]]]]
    standard <- lavTestLRT(fit, general$ml)
    scaled <- lavTestLRT(fit_mlm, general$mlm, method = "satorra.bentler.2001")
    rows[[length(rows) + 1]] <- data.frame(
      model = name, measure = c("lr.chisq", "lr.df", "lr.pvalue", "lr.chisq.scaled", "lr.pvalue.scaled"),
      value = c(standard[2, "Chisq diff"], standard[2, "Df diff"], standard[2, "Pr(>Chisq)"],
                scaled[2, "Chisq diff"], scaled[2, "Pr(>Chisq)"]))
  }
  std <- standardizedSolution(fit)
  std <- std[std$op == "=~", ]
  rows[[length(rows) + 1]] <- data.frame(model = name,
                                         measure = paste0("std:", sub("_(pre|post)$", ".\\1", std$rhs)),
                                         value = std$est.std)
}
# The time of the fits alone (without R's start-up), for benchmarks/invariance_speed.py.
message(sprintf("lavaan fit seconds: %.4f", proc.time()[["elapsed"]] - started))
out <- do.call(rbind, rows)
write.csv(out, args[3], row.names = FALSE)
