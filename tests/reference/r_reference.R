# Reference numbers for the statistics tests, computed with R (lme4, lmerTest, psych).
# Run from this folder: Rscript r_reference.R   (writes r_reference.csv)
# Versions used for the stored file are written into it (quantity "version").
suppressMessages({library(lme4); library(lmerTest); library(psych)})
rows <- list()
add <- function(case, quantity, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, quantity = quantity, term = term,
                                          value = value)
}
add_fit <- function(case, fit) {
  coefs <- coef(summary(fit, ddf = "Satterthwaite"))
  for (term in rownames(coefs)) {
    add(case, "estimate", term, coefs[term, "Estimate"])
    add(case, "std_error", term, coefs[term, "Std. Error"])
    add(case, "df", term, coefs[term, "df"])
  }
  vc <- as.data.frame(VarCorr(fit))
  for (i in seq_len(nrow(vc))) {
    name <- paste(vc$grp[i], vc$var1[i], ifelse(is.na(vc$var2[i]), "", vc$var2[i]), sep = "|")
    add(case, "vcov", name, vc$vcov[i])
    add(case, "sdcor", name, vc$sdcor[i])
  }
  add(case, "reml_criterion", "", REMLcrit(fit))
  add(case, "singular", "", as.numeric(isSingular(fit)))
}

sleep <- read.csv("sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
add_fit("sleepstudy", lmer(Reaction ~ Days + (Days | Subject), sleep, REML = TRUE))

pastes <- read.csv("pastes.csv")
add_fit("pastes", lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), pastes, REML = TRUE))

boundary <- read.csv("boundary_design.csv")
add_fit("boundary", lmer(y ~ post * program + (1 | institution) + (1 | institution:participant),
                         boundary, REML = TRUE,
                         control = lmerControl(check.conv.singular = "ignore")))

bfi_a <- read.csv("bfi_agreeableness.csv")
a <- psych::alpha(bfi_a, check.keys = FALSE)
add("bfi_agreeableness", "alpha", "", a$total$raw_alpha)
ci <- psych::alpha.ci(a$total$raw_alpha, nrow(bfi_a), ncol(bfi_a))
add("bfi_agreeableness", "feldt_low", "", ci$lower.ci)
add("bfi_agreeableness", "feldt_high", "", ci$upper.ci)
for (item in rownames(a$alpha.drop)) {
  add("bfi_agreeableness", "alpha_if_deleted", item, a$alpha.drop[item, "raw_alpha"])
  add("bfi_agreeableness", "item_total_r", item, a$item.stats[item, "r.drop"])
}
loadings <- fa(bfi_a, 1, fm = "minres")$loadings[, 1]
add("bfi_agreeableness", "omega_total", "", sum(loadings)^2 / (sum(loadings)^2 + sum(1 - loadings^2)))
for (item in names(loadings)) add("bfi_agreeableness", "loading", item, loadings[[item]])

add("versions", "version", R.version.string, NA)
for (pkg in c("lme4", "lmerTest", "psych")) add("versions", "version", paste(pkg, packageVersion(pkg)), NA)
out <- do.call(rbind, rows)
write.csv(out, "r_reference.csv", row.names = FALSE)
