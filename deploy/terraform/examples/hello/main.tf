# examples/hello on ECS Fargate: one ECR repository, one cluster, and two services
# of the same image, each behind its own load balancer:
#   hello-staging  ECS controller, rolling updates with the circuit breaker
#   hello-prod     CODE_DEPLOY controller, blue/green with a test listener

locals {
  name           = "hello"
  container_name = "hello"
  container_port = 8080
  health_path    = "/health"
  # The image's USER (examples/hello/Dockerfile).
  user = "65532:65532"

  vpc_id             = var.create_vpc ? module.network[0].vpc_id : var.vpc_id
  public_subnet_ids  = var.create_vpc ? module.network[0].public_subnet_ids : var.public_subnet_ids
  private_subnet_ids = var.create_vpc ? module.network[0].private_subnet_ids : var.private_subnet_ids
  # Who may reach the blue/green test listener: addresses inside the VPC.
  test_cidrs = var.create_vpc ? [module.network[0].vpc_cidr] : []
}

module "network" {
  count  = var.create_vpc ? 1 : 0
  source = "../../modules/network"

  name = local.name
}

module "ecr" {
  source = "../../modules/ecr"

  name = local.name
}

module "cluster" {
  source = "../../modules/ecs-cluster"

  name = local.name
}

module "alb_staging" {
  source = "../../modules/alb"

  name              = "${local.name}-staging"
  vpc_id            = local.vpc_id
  subnet_ids        = local.public_subnet_ids
  certificate_arn   = var.certificate_arn
  target_port       = local.container_port
  health_check_path = local.health_path
}

module "staging" {
  source = "../../modules/ecs-service"

  name                  = "${local.name}-staging"
  cluster_name          = module.cluster.name
  cluster_arn           = module.cluster.arn
  image                 = var.image
  ecr_repository_arn    = module.ecr.repository_arn
  container_name        = local.container_name
  container_port        = local.container_port
  user                  = local.user
  environment           = { HELLO_VERSION = "staging" }
  desired_count         = var.desired_count
  vpc_id                = local.vpc_id
  subnet_ids            = local.private_subnet_ids
  alb_security_group_id = module.alb_staging.security_group_id
  target_group_arn      = module.alb_staging.target_group_arn
  deployment_controller = "ECS"
}

module "alb_prod" {
  source = "../../modules/alb"

  name                = "${local.name}-prod"
  vpc_id              = local.vpc_id
  subnet_ids          = local.public_subnet_ids
  certificate_arn     = var.certificate_arn
  target_port         = local.container_port
  health_check_path   = local.health_path
  blue_green          = true
  test_listener_cidrs = local.test_cidrs
}

module "prod" {
  source = "../../modules/ecs-service"

  name                  = "${local.name}-prod"
  cluster_name          = module.cluster.name
  cluster_arn           = module.cluster.arn
  image                 = var.image
  ecr_repository_arn    = module.ecr.repository_arn
  container_name        = local.container_name
  container_port        = local.container_port
  user                  = local.user
  environment           = { HELLO_VERSION = "prod" }
  desired_count         = var.desired_count
  vpc_id                = local.vpc_id
  subnet_ids            = local.private_subnet_ids
  alb_security_group_id = module.alb_prod.security_group_id
  target_group_arn      = module.alb_prod.target_group_arn
  deployment_controller = "CODE_DEPLOY"
  target_group_names    = [module.alb_prod.target_group_names["blue"], module.alb_prod.target_group_names["green"]]
  target_group_arns     = [module.alb_prod.target_group_arns["blue"], module.alb_prod.target_group_arns["green"]]
  prod_listener_arn     = module.alb_prod.prod_listener_arn
  test_listener_arn     = module.alb_prod.test_listener_arn
}
